/* A shared library named like a plugin but without the entry point. */
__attribute__((visibility("default"))) int some_other_function(void) { return 42; }
