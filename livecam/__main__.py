from livecam.cli import main_entry

main_entry()
