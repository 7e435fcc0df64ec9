from spikelens.cli import main

raise SystemExit(main())
