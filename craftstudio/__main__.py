from craftstudio.cli import main

raise SystemExit(main())
