// C wrappers for the network-related calls of include/psyne.h (see cgo.go
// for why every call goes through a wrapper that copies the error detail).
#ifndef PSYNE_GO_NETWORK_WRAP_H
#define PSYNE_GO_NETWORK_WRAP_H

#include <stddef.h>
#include <stdint.h>
#include <psyne.h>
#include "wrap.h"

typedef struct {
	int32_t rc; char *detail;
	psyne_extended_metrics_t m;
} gopsyne_ext_metrics_result;

gopsyne_ext_metrics_result gopsyne_get_extended_metrics(psyne_channel_t *ch);
// Writes the NUL-terminated address to buf (cap bytes; Go memory, used only
// during the call).
gopsyne_result gopsyne_get_local_address(psyne_channel_t *ch, char *buf, size_t cap);

#endif
