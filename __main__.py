from fairgym.cli import main

raise SystemExit(main())
