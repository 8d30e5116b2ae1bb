// C wrappers for the network-related calls (network_wrap.h).
#include <stdlib.h>
#include <string.h>
#include "network_wrap.h"

static char *gopsyne_net_detail(int32_t rc) {
	if (rc == 0) return NULL;
	const char *m = psyne_last_error_message();
	return strdup(m != NULL ? m : "");
}

gopsyne_ext_metrics_result gopsyne_get_extended_metrics(psyne_channel_t *ch) {
	gopsyne_ext_metrics_result r;
	memset(&r, 0, sizeof r);
	r.rc = (int32_t)psyne_channel_get_extended_metrics(ch, &r.m);
	r.detail = gopsyne_net_detail(r.rc);
	return r;
}

gopsyne_result gopsyne_get_local_address(psyne_channel_t *ch, char *buf, size_t cap) {
	gopsyne_result r;
	r.rc = (int32_t)psyne_channel_get_local_address(ch, buf, cap);
	r.detail = gopsyne_net_detail(r.rc);
	return r;
}
