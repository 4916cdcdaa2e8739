/* A large memcpy split across a few threads. One core copies about 5 GB/s; staging a batch of
 * float tiles for the GPU (154 MB for 256 tiles of 224x224) then costs as long as the network
 * itself. Thread-safe; the threads live only for the call. */
#ifndef HP_PARALLEL_COPY_H
#define HP_PARALLEL_COPY_H

#include <stddef.h>

/* Copies `bytes` from src to dst (which must not overlap) with up to `max_threads` threads
 * (<= 0: one per online CPU, at most 8); small copies, or a failed thread start, copy on the
 * calling thread. Never fails. */
void hp_parallel_memcpy(void *dst, const void *src, size_t bytes, int max_threads);

#endif
