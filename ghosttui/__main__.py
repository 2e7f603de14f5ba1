from ghosttui.cli import main

main()
