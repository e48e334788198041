from rootseed.cli import main

main()
