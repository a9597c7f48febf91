#ifndef DUBAN_CZEROMQ_SHIM_H
#define DUBAN_CZEROMQ_SHIM_H

#include <zmq.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <errno.h>

// errno is a macro in glibc, which Swift cannot call directly.
static inline int duban_errno(void) { return errno; }

#endif
