// The cluster-secret handshake that opens every internal TCP connection before any replication
// message is read (docs/security.md): the connecting node sends a fresh nonce and its node id,
// the accepting node answers its own fresh nonce and an HMAC proof, the connecting node checks
// it and answers its proof. Both sides prove they hold the secret; a recorded exchange is useless
// later (new nonces each time). Templates over the stream type (a TCP socket, or the TLS stream
// under it), so the proof runs above whichever transport layer is configured. The caller bounds
// the time (it closes the stream on its deadline) and keeps the stream alive until `done`.
#pragma once

#include "common/cluster_auth.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include <functional>
#include <memory>
#include <string>

namespace chorus::cluster {

// A handshake not finished in this time is abandoned and its connection closed: a peer that
// connects and stays silent must not hold a connection slot.
inline constexpr int kAuthHandshakeTimeoutMs = 3000;

// done(error, peer_node_id): error "" on success; the accepting side learns the connector's id.
using HandshakeDone = std::function<void(std::string error, std::string peer_node_id)>;

namespace detail {

// Reads or writes exactly `buffer`, then calls (op.*then)(error) on the op's executor.
template <class Op>
void read_then(const std::shared_ptr<Op>& op, std::string& buffer,
               void (Op::*then)(boost::system::error_code)) {
  boost::asio::async_read(
      op->stream, boost::asio::buffer(buffer),
      boost::asio::bind_executor(
          op->ex, [op, then](boost::system::error_code ec, size_t) { ((*op).*then)(ec); }));
}
template <class Op>
void write_then(const std::shared_ptr<Op>& op, const std::string& buffer,
                void (Op::*then)(boost::system::error_code)) {
  boost::asio::async_write(
      op->stream, boost::asio::buffer(buffer),
      boost::asio::bind_executor(
          op->ex, [op, then](boost::system::error_code ec, size_t) { ((*op).*then)(ec); }));
}

template <class Stream, class Executor>
struct AcceptHandshake : std::enable_shared_from_this<AcceptHandshake<Stream, Executor>> {
  AcceptHandshake(Stream& s, Executor e, const auth::Secret& k, std::string c, HandshakeDone d)
      : stream(s), ex(std::move(e)), secret(k), cluster(std::move(c)), done(std::move(d)) {}
  Stream& stream;
  Executor ex;
  const auth::Secret& secret;
  std::string cluster;
  HandshakeDone done;
  std::string head;
  std::string peer_id;
  std::string client_nonce;
  std::string server_nonce;
  std::string out;
  std::string proof;

  void start() {
    head.resize(auth::kHelloMagic.size() + auth::kNonceBytes + 1);
    read_then(this->shared_from_this(), head, &AcceptHandshake::on_head);
  }
  void on_head(boost::system::error_code ec) {
    if (ec) return done("connection closed during the handshake", "");
    if (head.compare(0, auth::kHelloMagic.size(), auth::kHelloMagic) != 0) {
      return done("not a cluster handshake (a node without the cluster secret?)", "");
    }
    client_nonce = head.substr(auth::kHelloMagic.size(), auth::kNonceBytes);
    const auto id_bytes = static_cast<unsigned char>(head.back());
    if (id_bytes == 0) return done("empty node id in the handshake", "");
    peer_id.resize(id_bytes);
    read_then(this->shared_from_this(), peer_id, &AcceptHandshake::on_id);
  }
  void on_id(boost::system::error_code ec) {
    if (ec) return done("connection closed during the handshake", "");
    server_nonce = auth::random_bytes(auth::kNonceBytes);
    out = server_nonce + auth::server_proof(secret, cluster, peer_id, client_nonce, server_nonce);
    write_then(this->shared_from_this(), out, &AcceptHandshake::on_sent);
  }
  void on_sent(boost::system::error_code ec) {
    if (ec) return done("connection closed during the handshake", "");
    proof.resize(auth::kMacBytes);
    read_then(this->shared_from_this(), proof, &AcceptHandshake::on_proof);
  }
  void on_proof(boost::system::error_code ec) {
    if (ec) return done("peer hung up after our proof (it holds another cluster secret?)", "");
    const std::string expected =
        auth::client_proof(secret, cluster, peer_id, client_nonce, server_nonce);
    if (!auth::equal_constant_time(proof, expected)) {
      return done("wrong proof from " + peer_id + " (another cluster secret?)", "");
    }
    done("", peer_id);
  }
};

template <class Stream, class Executor>
struct ConnectHandshake : std::enable_shared_from_this<ConnectHandshake<Stream, Executor>> {
  ConnectHandshake(Stream& s, Executor e, const auth::Secret& k, std::string c, std::string id,
                   HandshakeDone d)
      : stream(s),
        ex(std::move(e)),
        secret(k),
        cluster(std::move(c)),
        self_id(std::move(id)),
        done(std::move(d)) {}
  Stream& stream;
  Executor ex;
  const auth::Secret& secret;
  std::string cluster;
  std::string self_id;
  HandshakeDone done;
  std::string client_nonce;
  std::string out;
  std::string answer;

  void start() {
    client_nonce = auth::random_bytes(auth::kNonceBytes);
    out = std::string(auth::kHelloMagic) + client_nonce +
          static_cast<char>(static_cast<unsigned char>(self_id.size())) + self_id;
    write_then(this->shared_from_this(), out, &ConnectHandshake::on_hello);
  }
  void on_hello(boost::system::error_code ec) {
    if (ec) return done("connection closed during the handshake", "");
    answer.resize(auth::kNonceBytes + auth::kMacBytes);
    read_then(this->shared_from_this(), answer, &ConnectHandshake::on_answer);
  }
  void on_answer(boost::system::error_code ec) {
    if (ec) return done("peer closed the handshake (it holds another cluster secret?)", "");
    const std::string server_nonce = answer.substr(0, auth::kNonceBytes);
    const std::string expected =
        auth::server_proof(secret, cluster, self_id, client_nonce, server_nonce);
    if (!auth::equal_constant_time(answer.substr(auth::kNonceBytes), expected)) {
      return done("the peer's proof is wrong: it does not hold this cluster's secret", "");
    }
    out = auth::client_proof(secret, cluster, self_id, client_nonce, server_nonce);
    write_then(this->shared_from_this(), out, &ConnectHandshake::on_proof);
  }
  void on_proof(boost::system::error_code ec) {
    if (ec) return done("connection closed during the handshake", "");
    done("", "");
  }
};

}  // namespace detail

// The accepting side. Every step (and `done`) runs on `ex`, the executor that owns the stream;
// `secret` must outlive the handshake.
template <class Stream, class Executor>
void async_accept_cluster_handshake(Stream& stream, Executor ex, const auth::Secret& secret,
                                    std::string cluster, HandshakeDone done) {
  std::make_shared<detail::AcceptHandshake<Stream, Executor>>(stream, std::move(ex), secret,
                                                              std::move(cluster), std::move(done))
      ->start();
}

// The connecting side; `self_id` (at most auth::kNodeIdBytesMax bytes) names this node.
template <class Stream, class Executor>
void async_connect_cluster_handshake(Stream& stream, Executor ex, const auth::Secret& secret,
                                     std::string cluster, std::string self_id, HandshakeDone done) {
  std::make_shared<detail::ConnectHandshake<Stream, Executor>>(
      stream, std::move(ex), secret, std::move(cluster), std::move(self_id), std::move(done))
      ->start();
}

}  // namespace chorus::cluster
