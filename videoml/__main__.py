from videoml.cli import main

raise SystemExit(main())
