"""`python -m craftstudio.demo ...`: the demo lab's commands (see `craftstudio.demo.lab`)."""

from craftstudio.demo.lab.commands import main

raise SystemExit(main())
