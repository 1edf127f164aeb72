/* Dispatch of the pool and connection calls (h1_pool.h) to the protocol behind each handle. */
#include "upstream/upstream_ops.h"

rm_upstream_conn_t *rm_h1_pool_acquire(rm_h1_pool_t *pool, const rm_upstream_callbacks_t *cbs, void *ctx,
                                       bool *ready)
{
    return pool->ops->acquire(pool, cbs, ctx, ready);
}

void rm_h1_pool_drain(rm_h1_pool_t *pool)
{
    pool->ops->drain(pool);
}

size_t rm_h1_pool_num_connections(const rm_h1_pool_t *pool)
{
    return pool->ops->num_connections(pool);
}

bool rm_h1_pool_has_idle(const rm_h1_pool_t *pool)
{
    return pool->ops->has_idle(pool);
}

void rm_h1_pool_cancel_wait(rm_h1_pool_t *pool, void *ctx)
{
    pool->ops->cancel_wait(pool, ctx);
}

void rm_upstream_conn_send_head(rm_upstream_conn_t *c, const rm_request_head_t *req, bool has_body,
                                bool end_stream)
{
    c->ops->send_head(c, req, has_body, end_stream);
}

void rm_upstream_conn_send_data(rm_upstream_conn_t *c, struct evbuffer *data, bool end_stream)
{
    c->ops->send_data(c, data, end_stream);
}

void rm_upstream_conn_send_trailers(rm_upstream_conn_t *c, const rm_headers_t *trailers)
{
    c->ops->send_trailers(c, trailers);
}

size_t rm_upstream_conn_write_buffered(const rm_upstream_conn_t *c)
{
    return c->ops->write_buffered(c);
}

void rm_upstream_conn_read_disable(rm_upstream_conn_t *c, bool disable)
{
    c->ops->read_disable(c, disable);
}

void rm_upstream_conn_release(rm_upstream_conn_t *c)
{
    c->ops->release(c);
}

void rm_upstream_conn_abort(rm_upstream_conn_t *c)
{
    c->ops->abort(c);
}

rm_host_t *rm_upstream_conn_host(const rm_upstream_conn_t *c)
{
    return c->ops->host(c);
}
