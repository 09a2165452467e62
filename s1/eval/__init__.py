"""The evaluation harness: `run` (tasks -> sweep -> grades -> store), `store` (the resumable run store),
`report` and `plot` (one definition per number), `compare` and `summary` (methods side by side)."""
