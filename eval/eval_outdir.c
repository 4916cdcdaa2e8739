/* Output folders published whole (eval/eval_outdir.h). */
#include "eval/eval_outdir.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/remove_tree.h"

hp_status hp_eval_outdir_publish(const char *partial, const char *out, int overwrite, hp_error *err)
{
    struct stat sb;
    if (lstat(out, &sb) != 0) {
        if (rename(partial, out) != 0)
            return hp_error_set(err, HP_ERR_IO, "%s: cannot rename into place: %s", out,
                                strerror(errno));
        return HP_OK;
    }
    if (!overwrite)
        return hp_error_set(err, HP_ERR_INVALID, "%s exists; --overwrite replaces it", out);
    char old[4096];
    snprintf(old, sizeof old, "%s.old-%ld", out, (long)getpid());
    if (rename(out, old) != 0)
        return hp_error_set(err, HP_ERR_IO, "%s: cannot move the earlier result aside: %s", out,
                            strerror(errno));
    if (rename(partial, out) != 0) {
        int e = errno;
        rename(old, out);
        return hp_error_set(err, HP_ERR_IO, "%s: cannot rename into place: %s", out, strerror(e));
    }
    hp_remove_tree(old);
    return HP_OK;
}

