from lablib.experiments.cli import main

main()
