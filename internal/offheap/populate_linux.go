package offheap

import "syscall"

// populate has the kernel fault in a mapping's pages when it is made.
const populate = syscall.MAP_POPULATE
