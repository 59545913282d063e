from procaudit.cli.main import main

main()
