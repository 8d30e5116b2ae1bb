#!/bin/sh
# Run examples/c ipc_producer and ipc_consumer as two processes on one fresh
# ipc:// name and judge them together.
#   run-ipc-pair.sh PRODUCER CONSUMER [WRAPPER...]   (e.g. WRAPPER = valgrind ...)
# Exit 0 when both succeed, or when both report that this libpsyne build has no
# ipc:// yet (status 77, printed as SKIPPED); 1 for anything else.
set -u
producer=$1 consumer=$2
shift 2
name="psyne-example-$$"
"$@" "$consumer" "$name" & cpid=$!
"$@" "$producer" "$name" 2000; pstatus=$?
wait "$cpid"; cstatus=$?
if [ "$pstatus" -eq 0 ] && [ "$cstatus" -eq 0 ]; then
    echo "ipc pair: ok"
    exit 0
fi
if [ "$pstatus" -eq 77 ] && [ "$cstatus" -eq 77 ]; then
    echo "ipc pair: SKIPPED (ipc:// not supported by this libpsyne build yet)"
    exit 0
fi
echo "ipc pair: FAILED (producer exit $pstatus, consumer exit $cstatus)" >&2
exit 1
