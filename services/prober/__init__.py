"""The prober: asks the DNS data plane about every endpoint every 200 ms, and raises the one alarm
that names the cause (rules.py, alarms.py) rather than hundreds that name its effects."""
