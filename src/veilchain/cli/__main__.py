from veilchain.cli import main

main()
