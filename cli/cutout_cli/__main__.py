from cutout_cli.main import main

raise SystemExit(main())
