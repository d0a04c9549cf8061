#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Checks an example program against a local HTTP server.

    test-example.py COMMAND [ARGUMENT...]

COMMAND ADDRESS PIN... must print the page when a pin matches, and ask for
an update with exit status 3 when none does, as the pintls tool does; a
bad pin is a usage error, status 2.
"""

import subprocess
import sys
import unittest

from localserver import HTTP_BODY, LocalServer

EXIT_USAGE = 2
EXIT_UPDATE_REQUIRED = 3
COMMAND_TIMEOUT = 60
command = []


class TestExample(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = LocalServer('http').start()
        cls.addClassCleanup(cls.server.stop)

    def run_example(self, *pins):
        return subprocess.run(command + [self.server.address, *pins], capture_output=True,
                              text=True, timeout=COMMAND_TIMEOUT)

    def describe(self, result):
        return f'status {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}'

    def test_right_pin_shows_the_page(self):
        result = self.run_example(self.server.right_pin)
        self.assertEqual(result.returncode, 0, self.describe(result))
        self.assertIn(HTTP_BODY.strip(), result.stdout)

    def test_backup_pin_shows_the_page(self):
        result = self.run_example(self.server.wrong_pin, self.server.right_pin)
        self.assertEqual(result.returncode, 0, self.describe(result))
        self.assertIn(HTTP_BODY.strip(), result.stdout)

    def test_wrong_pin_asks_for_an_update(self):
        result = self.run_example(self.server.wrong_pin)
        self.assertEqual(result.returncode, EXIT_UPDATE_REQUIRED, self.describe(result))
        self.assertIn('Update required', result.stdout + result.stderr)
        self.assertNotIn(HTTP_BODY.strip(), result.stdout)

    def test_invalid_pin_is_refused(self):
        result = self.run_example('sha256/not-a-pin')
        self.assertEqual(result.returncode, EXIT_USAGE, self.describe(result))
        self.assertIn('Bad pin configuration', result.stderr)


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(f'Usage: {sys.argv[0]} COMMAND [ARGUMENT...]')
    command = sys.argv[1:]
    unittest.main(argv=sys.argv[:1], verbosity=2)
