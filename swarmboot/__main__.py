from swarmboot.cli import main

main()
