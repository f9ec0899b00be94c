from fairgym.commands import main

raise SystemExit(main())
