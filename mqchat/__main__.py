from mqchat.cli import main

main()
