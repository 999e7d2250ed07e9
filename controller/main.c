/* main.c - the keyrotator binary: everything happens in the cli module. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
	return kr_cli_main(argc, argv);
}
