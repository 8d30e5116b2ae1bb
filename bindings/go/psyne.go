package psyne

// #include "wrap.h"
import "C"

// Init initialises libpsyne (psyne_init). Calling it is optional for the
// transports of this version, and harmless more than once.
func Init() error {
	r := C.gopsyne_init()
	return takeError("Init", r.rc, r.detail)
}

// Cleanup releases libpsyne's global resources (psyne_cleanup). Close every
// Channel first.
func Cleanup() {
	C.psyne_cleanup()
}

// Version returns the libpsyne version string, e.g. "0.1.0".
func Version() string {
	return C.GoString(C.psyne_version())
}
