/* Viewer sessions: a pathologist logs in once with their API token and the browser then holds
 * an opaque session id in a cookie (HttpOnly, SameSite=Strict, Secure under TLS), so no script
 * on the page ever holds the token. Each session has a CSRF token that every state-changing
 * request made with the cookie must repeat in X-CSRF-Token. A session idle for
 * HP_SESSION_IDLE_S ends; logging out ends it at once; revoking the token ends it at the next
 * request (the token is looked up again each time).
 *
 * Sessions live in the server's memory: they end when the server restarts, and servers sharing
 * a PostgreSQL store do not share them (route a browser to one server). Only SHA-256 of the
 * session id is kept. Thread-safe. */
#ifndef HP_SERVER_SESSION_H
#define HP_SERVER_SESSION_H

#include <stdint.h>

#include "common/status.h"

#define HP_SESSION_IDLE_S (30 * 60)
#define HP_SESSION_COOKIE "hp_session"
#define HP_SESSION_MAX 4096

typedef struct hp_sessions hp_sessions;

hp_sessions *hp_sessions_create(void);
void hp_sessions_destroy(hp_sessions *s);

/* Starts a session for the token `token_text` (kept to look the token up on each request).
 * `sid` receives the cookie value and `csrf` the CSRF token (both 43 characters). */
hp_status hp_session_start(hp_sessions *s, const char *token_text, int64_t now_ms,
                           char sid[64], char csrf[64]);
/* 1 when `sid` is a live session (renewed now; token text and CSRF token copied out), 0 not. */
int hp_session_find(hp_sessions *s, const char *sid, int64_t now_ms, char token_text[80],
                    char csrf[64]);
/* Ends the session `sid` (no effect when there is none). */
void hp_session_end(hp_sessions *s, const char *sid);

#endif
