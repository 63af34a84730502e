"""The live web console (`dnsctl console`): one page that watches the stack and, with the token, drives it."""
