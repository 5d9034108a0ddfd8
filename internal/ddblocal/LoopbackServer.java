// LoopbackServer runs DynamoDB Local listening on 127.0.0.1 only.
//
// DynamoDB Local has no option to choose its address: it builds its Jetty
// server with a port alone, which listens on every interface, so anyone who
// can reach the machine could write its tables. This class builds the server
// from DynamoDB Local's own command line, as its ServerRunner does, sets the
// connector's host before the server starts, and starts it. internal/ddblocal
// compiles it once against the jar and runs it with the jar on the class
// path:
//
//	java -cp DynamoDBLocal.jar:<classes> LoopbackServer -port 8000 -sharedDb ...
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackServer {
    static final String HOST = "127.0.0.1";

    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer ddb = ServerRunner.createServerFromCommandLineArgs(args);
        for (Connector c : jettyServer(ddb).getConnectors()) {
            if (!(c instanceof ServerConnector)) {
                throw new IllegalStateException("unexpected Jetty connector " + c + ": cannot bind it to " + HOST);
            }
            ((ServerConnector) c).setHost(HOST);
        }
        ddb.start();
    }

    // The Jetty server is a private field of DynamoDBProxyServer; it is
    // found by its type, whatever its name in this release.
    static Server jettyServer(DynamoDBProxyServer ddb) throws IllegalAccessException {
        for (Field f : DynamoDBProxyServer.class.getDeclaredFields()) {
            if (f.getType() == Server.class) {
                f.setAccessible(true);
                return (Server) f.get(ddb);
            }
        }
        throw new IllegalStateException("DynamoDBProxyServer holds no Jetty Server: this release of DynamoDB Local is not supported");
    }
}
