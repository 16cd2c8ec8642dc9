from smstools_emulator.server import main

main()
