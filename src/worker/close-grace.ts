/**
 * How long `close()` waits after the deadline for aborted jobs to be given back and the connections to close (ms).
 * Alone in this module so that `upscale` can state its exit margin without loading the lanes.
 */
export const CLOSE_GRACE_MS = 2000;
