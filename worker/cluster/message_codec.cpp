// Replication message codec.
#include "worker/cluster/message_codec.hpp"

namespace chorus::cluster {
namespace {

void to_proto(replication::Entry& e, internal::Entry* out) {
  out->set_position(e.position);
  out->set_end(e.end);
  out->set_epoch(e.epoch);
  out->set_is_epoch_record(e.is_epoch_record);
  out->set_payload(std::move(e.payload));
  if (e.is_gap) out->set_is_gap(true);
}

replication::Entry from_proto(internal::Entry& e) {
  return replication::Entry{
      e.position(), e.end(), e.epoch(), e.is_epoch_record(), std::move(*e.mutable_payload()),
      e.is_gap()};
}

}  // namespace

internal::ReplicationMessage to_proto(replication::Message m, const std::string& cluster,
                                      const std::string& from_endpoint,
                                      const std::string& to_endpoint) {
  internal::ReplicationMessage out;
  out.set_from(from_endpoint);
  out.set_to(to_endpoint);
  out.set_cluster(cluster);
  out.set_from_instance(m.from);
  out.set_to_instance(m.to);
  std::visit(
      [&](auto& b) {
        using T = std::decay_t<decltype(b)>;
        if constexpr (std::is_same_v<T, replication::VoteRequest>) {
          auto* p = out.mutable_vote_request();
          p->set_epoch(b.epoch);
          p->set_last_epoch(b.last_epoch);
          p->set_log_end(b.log_end);
          p->set_priority(b.priority);
          p->set_pre(b.pre);
        } else if constexpr (std::is_same_v<T, replication::VoteResponse>) {
          auto* p = out.mutable_vote_response();
          p->set_epoch(b.epoch);
          p->set_granted(b.granted);
          p->set_pre(b.pre);
        } else if constexpr (std::is_same_v<T, replication::Subscribe>) {
          auto* p = out.mutable_subscribe();
          p->set_epoch(b.epoch);
          p->set_log_end(b.log_end);
          p->set_session(b.session);
          for (const auto& e : b.epochs) {
            auto* x = p->add_epochs();
            x->set_number(e.number);
            x->set_position(e.position);
            x->set_id(to_raw_bytes(e.id));
          }
        } else if constexpr (std::is_same_v<T, replication::Append>) {
          auto* p = out.mutable_append();
          p->set_epoch(b.epoch);
          p->set_start(b.start);
          p->set_sync(b.sync);
          p->set_commit_end(b.commit_end);
          p->set_session(b.session);
          if (b.commit_only) p->set_commit_only(true);
          p->mutable_entries()->Reserve(static_cast<int>(b.entries.size()));
          for (auto& e : b.entries) to_proto(e, p->add_entries());
        } else if constexpr (std::is_same_v<T, replication::AppendAck>) {
          auto* p = out.mutable_append_ack();
          p->set_epoch(b.epoch);
          p->set_log_end(b.log_end);
          p->set_durable_end(b.durable_end);
          p->set_session(b.session);
        }
      },
      m.body);
  return out;
}

std::optional<replication::Message> from_proto(internal::ReplicationMessage m) {
  replication::Message out;
  out.from = m.from_instance();
  out.to = m.to_instance();
  switch (m.body_case()) {
    case internal::ReplicationMessage::kVoteRequest: {
      const auto& p = m.vote_request();
      out.body =
          replication::VoteRequest{p.epoch(), p.last_epoch(), p.log_end(), p.priority(), p.pre()};
      break;
    }
    case internal::ReplicationMessage::kVoteResponse:
      out.body = replication::VoteResponse{m.vote_response().epoch(), m.vote_response().granted(),
                                           m.vote_response().pre()};
      break;
    case internal::ReplicationMessage::kSubscribe: {
      const auto& p = m.subscribe();
      replication::Subscribe s{p.epoch(), p.log_end(), {}, p.session()};
      for (const auto& e : p.epochs()) {
        const auto id = from_raw_bytes(e.id());
        if (!id) return std::nullopt;
        s.epochs.push_back(replication::EpochRecord{e.number(), e.position(), *id});
      }
      out.body = std::move(s);
      break;
    }
    case internal::ReplicationMessage::kAppend: {
      auto& p = *m.mutable_append();
      replication::Append a{p.epoch(),      p.start(),   p.sync(),       {},
                            p.commit_end(), p.session(), p.commit_only()};
      a.entries.reserve(static_cast<size_t>(p.entries_size()));
      for (auto& e : *p.mutable_entries()) a.entries.push_back(from_proto(e));
      out.body = std::move(a);
      break;
    }
    case internal::ReplicationMessage::kAppendAck: {
      const auto& p = m.append_ack();
      out.body = replication::AppendAck{p.epoch(), p.log_end(), p.durable_end(), p.session()};
      break;
    }
    default:
      return std::nullopt;
  }
  return out;
}

}  // namespace chorus::cluster
