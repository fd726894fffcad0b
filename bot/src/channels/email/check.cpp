// clang-format off
#include "parley/bot/net.h"
// clang-format on

#include "parley/bot/channels/email/check.h"

#include <boost/asio/ssl/context.hpp>

#include "channels/email/imap_client.h"
#include "channels/email/smtp_client.h"

namespace parley::bot::channels::email {

namespace asio = net::asio;

EmailCheck check_email(const EmailOptions& options, const std::string& imap_password,
                       const std::string& smtp_password) {
  EmailCheck out;
  asio::io_context ioc;
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.set_default_verify_paths();
  tls.set_verify_mode(asio::ssl::verify_peer);
  const net::Executor ex = ioc.get_executor();
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        ImapClient imap(ex, tls);
        const ImapEndpoint endpoint{options.imap.host, options.imap.port, options.imap.tls,
                                    options.imap.user, imap_password};
        Status st = co_await imap.open(endpoint);
        if (st.ok()) {
          out.imap_capabilities = imap.capabilities();
          out.imap_tls = options.imap.tls != MailTls::none;
          auto box = co_await imap.select(options.imap.mailbox);
          if (box) {
            out.imap_ok = true;
            out.uidvalidity = box->uidvalidity;
            out.uidnext = box->uidnext;
            out.messages = box->exists;
          } else {
            out.imap_error = box.error().message;
          }
          co_await imap.logout();
        } else {
          out.imap_error = st.error().message;
        }

        SmtpClient smtp(ex, tls);
        const SmtpEndpoint se{options.smtp.host, options.smtp.port, options.smtp.tls,
                              options.smtp.user, smtp_password,     "parley.check"};
        auto session = co_await smtp.open(se);
        if (session) {
          out.smtp_ok = true;
          out.smtp_greeting = session->greeting;
          out.smtp_extensions = session->extensions;
          out.smtp_mechanisms = session->mechanisms;
          out.smtp_tls = session->tls;
          out.smtp_authenticated = session->authenticated;
          co_await smtp.quit();
        } else {
          out.smtp_error = session.error().message;
        }
      },
      asio::detached);
  ioc.run();
  return out;
}

}  // namespace parley::bot::channels::email
