from repalign.bench import main

main()
