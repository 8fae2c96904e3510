from compiler.entry import main

raise SystemExit(main())
