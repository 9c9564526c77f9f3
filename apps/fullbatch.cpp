// Placeholder entry point; the CLI is built on top of the library in later commits.
int main() { return 0; }
