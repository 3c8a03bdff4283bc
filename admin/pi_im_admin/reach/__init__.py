"""What the reachability page looks at: names in DNS, the device's certificate and the ports
it listens on. Each module reads one thing; services/reachability.py says what it means."""
