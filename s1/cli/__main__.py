from s1.cli import app

app()
