/* Socket address helpers shared by listeners, hosts, the admin and the config checks. */
#ifndef RM_CORE_NET_H
#define RM_CORE_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Fills *ss from an IPv4/IPv6 literal and a port. Returns 0, or -1 when ip is not a literal. */
int rm_sockaddr_from_ip(const char *ip, uint32_t port, struct sockaddr_storage *ss, socklen_t *len);
/* Writes "ip:port" (IPv6 as "[ip]:port") into buf. */
void rm_sockaddr_str(const struct sockaddr *sa, char *buf, size_t len);
/* Whether s is an IPv4 or IPv6 literal. */
bool rm_is_ip_literal(const char *s);
/* Whether s can be a DNS name (printable ASCII, no space, '/' or ':'). */
bool rm_is_hostname(const char *s);

#endif
