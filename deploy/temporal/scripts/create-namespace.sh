#!/bin/sh
# Creates the namespace connectflow runs in, unless it exists. The worker adds the search attributes it needs.
set -eu
: "${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS must be set}" "${NAMESPACE:?NAMESPACE must be set}" "${RETENTION:?RETENTION must be set}"

tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
	tries=$((tries + 1))
	if [ "$tries" -ge 30 ]; then
		echo "namespace: Temporal at $TEMPORAL_ADDRESS is not healthy after $tries tries" >&2
		exit 1
	fi
	sleep 2
done

if temporal operator namespace describe --namespace "$NAMESPACE" --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; then
	echo "namespace: $NAMESPACE exists"
else
	temporal operator namespace create --namespace "$NAMESPACE" --retention "$RETENTION" --address "$TEMPORAL_ADDRESS"
	echo "namespace: $NAMESPACE created, retention $RETENTION"
fi
