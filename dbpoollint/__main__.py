from dbpoollint.cli import main

main()
