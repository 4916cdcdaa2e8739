/* Removing a folder the program made itself (a failed or replaced temporary output). */
#ifndef HP_REMOVE_TREE_H
#define HP_REMOVE_TREE_H

/* Removes the folder `path` and everything in it, never following symbolic links. Returns 0
 * when done or when `path` is not a folder (nothing to remove), -1 when something stayed. */
int hp_remove_tree(const char *path);

#endif
