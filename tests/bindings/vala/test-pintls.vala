/* SPDX-License-Identifier: LGPL-2.1-or-later */

/*
 * Built against the generated pintls-1.vapi: pin sets, the PinTls.Error
 * error domain, and synchronous and asynchronous pinned connections to the
 * local gnutls-serv echo server that localserver.py starts.
 */

string address;
string right_pin;
string wrong_pin;

string
require_env (string name)
{
    var value = Environment.get_variable (name);
    if (value == null)
        error ("%s is not set: run this test through localserver.py", name);
    return value;
}

PinTls.PinSet
pin_set (string pin)
{
    try {
        return new PinTls.PinSet ({ pin });
    } catch (Error e) {
        assert_no_error (e);
        assert_not_reached ();
    }
}

string
echo (IOStream connection, string text) throws Error
{
    size_t written;
    connection.output_stream.write_all (text.data, out written);
    assert_cmpuint ((uint) written, CompareOperator.EQ, text.length);

    var reader = new DataInputStream (connection.input_stream);
    return reader.read_line_utf8 () + "\n";
}

void
test_pin_set ()
{
    try {
        var pins = new PinTls.PinSet ({ right_pin + "; pin-sha256:" + right_pin.substring (7) });
        assert_cmpuint (pins.get_size (), CompareOperator.EQ, 1);
        assert_cmpstrv (pins.to_strings (), { right_pin });

        var both = pins.union (pin_set (wrong_pin));
        assert_cmpuint (both.get_size (), CompareOperator.EQ, 2);
        assert_true (both.equal (new PinTls.PinSet ({ wrong_pin, right_pin })));
    } catch (Error e) {
        assert_no_error (e);
    }
}

void
test_invalid_pin ()
{
    try {
        new PinTls.PinSet ({ "sha256/short" });
        assert_not_reached ();
    } catch (PinTls.Error.INVALID_PIN e) {
        assert_true ("sha256/short" in e.message);
    } catch (Error e) {
        assert_no_error (e);
    }

    try {
        new PinTls.PinSet ({});
        assert_not_reached ();
    } catch (Error e) {
        assert_error (e, PinTls.Error.quark (), PinTls.Error.EMPTY_PIN_SET);
    }
}

void
test_sync ()
{
    try {
        var connection = PinTls.connect (address, 443, pin_set (right_pin));
        assert_cmpstr (connection.presented_pins[0], CompareOperator.EQ, right_pin);
        assert_cmpstr (echo (connection, "from Vala\n"), CompareOperator.EQ, "from Vala\n");
        connection.close ();
    } catch (Error e) {
        assert_no_error (e);
    }
}

void
test_sync_mismatch ()
{
    try {
        PinTls.connect (address, 443, pin_set (wrong_pin));
        assert_not_reached ();
    } catch (PinTls.Error.PIN_MISMATCH e) {
        assert_true (right_pin in e.message);
    } catch (Error e) {
        assert_no_error (e);
    }
}

async string
fetch_echo (string pin, string text) throws Error
{
    var client = new SocketClient ();
    var tcp = yield client.connect_to_host_async (address, 0);
    var identity = NetworkAddress.parse (address, 0);
    var connection = new PinTls.ClientConnection (tcp, identity, pin_set (pin));

    yield connection.handshake_async (Priority.DEFAULT);
    yield connection.output_stream.write_all_async (text.data, Priority.DEFAULT, null, null);

    var reader = new DataInputStream (connection.input_stream);
    var line = yield reader.read_line_utf8_async ();
    yield connection.close_async ();
    return line + "\n";
}

void
test_async ()
{
    var loop = new MainLoop ();
    string? reply = null;
    bool mismatch = false;

    fetch_echo.begin (right_pin, "asynchronous Vala\n", (obj, result) => {
        try {
            reply = fetch_echo.end (result);
        } catch (Error e) {
            assert_no_error (e);
        }

        fetch_echo.begin (wrong_pin, "never sent\n", (obj2, result2) => {
            try {
                fetch_echo.end (result2);
            } catch (PinTls.Error.PIN_MISMATCH e) {
                mismatch = true;
            } catch (Error e) {
                assert_no_error (e);
            }
            loop.quit ();
        });
    });

    var timeout_id = Timeout.add_seconds (20, () => {
        error ("the main loop did not finish in time");
    });
    loop.run ();
    Source.remove (timeout_id);

    assert_cmpstr (reply, CompareOperator.EQ, "asynchronous Vala\n");
    assert_true (mismatch);
}

int
main (string[] args)
{
    Test.init (ref args);

    address = require_env ("PINTLS_TEST_ADDRESS");
    right_pin = require_env ("PINTLS_TEST_RIGHT_PIN");
    wrong_pin = require_env ("PINTLS_TEST_WRONG_PIN");

    Test.add_func ("/pintls/vala/pin-set", test_pin_set);
    Test.add_func ("/pintls/vala/invalid-pin", test_invalid_pin);
    Test.add_func ("/pintls/vala/sync", test_sync);
    Test.add_func ("/pintls/vala/sync-mismatch", test_sync_mismatch);
    Test.add_func ("/pintls/vala/async", test_async);

    return Test.run ();
}
