/*
 * What a reflector's change was.  Its own header, without uv.h, so that the
 * pure decision code (controller/core/) can take a delta from the reflector's
 * handler without seeing the HTTP layer that kc_reflector.h pulls in.
 */
#ifndef KC_DELTA_H
#define KC_DELTA_H

enum kc_delta {
	KC_DELTA_ADDED = 1,
	KC_DELTA_MODIFIED,
	KC_DELTA_DELETED,
};

#endif
