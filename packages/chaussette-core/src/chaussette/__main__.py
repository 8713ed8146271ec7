from chaussette.cli import main

main()
