"""The door benchmark's parts; benchmarks/door_bench.py is the command that runs them.

    people    the fixed tune/report split of the LFW people, their photos, which photos can be pasted
    detector  dlib's HOG detector, one per thread, and the live loop's way of running it
    scenes    planning a scene: the scenario scripts, actors, backgrounds, visits
    render    drawing a planned scene into a clip, filling each visit's boxes and visibility
    truth     ground truth: attribution of boxes, detectability, truth.json, the real clips' shots
    jobs      the clips of a run (Job) and getting each ready: clip, truth, gallery
    run       running livecam and the peer on each clip and scoring them, a few clips at a time
    scoring   a run's records against the ground truth, and totals over clips
    report    the tables, the failures (-v), the contact sheets (--png) and the JSON (--json)

The modules import door_clip, bench_live and cpu_quota as top-level modules: the scripts put benchmarks/
on sys.path, as every benchmark does.
"""
