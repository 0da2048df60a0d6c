/* empty.c: keeps a module library non-empty while it has no sources of its own. */
typedef int ss_empty_translation_unit;
