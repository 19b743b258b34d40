from rag.cli import console

console()
