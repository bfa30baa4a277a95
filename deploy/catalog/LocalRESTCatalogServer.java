/*
 * wirestream: Apache Iceberg's RESTCatalogServer test fixture (iceberg-open-api 1.10.0, classifier
 * test-fixtures), bound to one address. The fixture's own main() builds `new Server(port)`, which
 * listens on every interface; this launcher is the fixture's start() with that one line changed,
 * using the fixture's classes (environment configuration, catalog adapter, servlet) unchanged.
 *
 * Configuration is the fixture's: every environment variable CATALOG_<NAME> becomes the catalog
 * property <name> ("__" -> "-", "_" -> ".", lower case), e.g. CATALOG_URI, CATALOG_WAREHOUSE,
 * CATALOG_IO__IMPL, CATALOG_S3_ENDPOINT, CATALOG_REST_PORT (rest.port). One addition:
 * CATALOG_REST_HOST (rest.host), default 127.0.0.1.
 *
 * It sits in the fixture's package because RCKUtils, RESTServerCatalogAdapter and
 * RESTCatalogServer.CatalogContext are package-private. wirestream compiles it once, next to the
 * jars (see wirestream/services.py and README.md).
 */
package org.apache.iceberg.rest;

import java.util.Map;
import org.apache.hadoop.conf.Configuration;
import org.apache.iceberg.CatalogProperties;
import org.apache.iceberg.CatalogUtil;
import org.apache.iceberg.catalog.Catalog;
import org.apache.iceberg.jdbc.JdbcCatalog;
import org.apache.iceberg.relocated.com.google.common.collect.Maps;
import org.apache.iceberg.util.PropertyUtil;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import org.eclipse.jetty.server.handler.gzip.GzipHandler;
import org.eclipse.jetty.servlet.ServletContextHandler;
import org.eclipse.jetty.servlet.ServletHolder;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

public final class LocalRESTCatalogServer {
  private static final Logger LOG = LoggerFactory.getLogger(LocalRESTCatalogServer.class);

  private LocalRESTCatalogServer() {}

  public static void main(String[] args) throws Exception {
    Map<String, String> properties = Maps.newHashMap(RCKUtils.environmentCatalogConfig());
    // The fixture's defaults, except that a warehouse is required (no temporary folder).
    properties.putIfAbsent(CatalogProperties.CATALOG_IMPL, JdbcCatalog.class.getName());
    properties.putIfAbsent(CatalogProperties.URI, "jdbc:sqlite::memory:");
    properties.putIfAbsent("jdbc.schema-version", "V1");
    if (properties.get(CatalogProperties.WAREHOUSE_LOCATION) == null) {
      throw new IllegalArgumentException("set CATALOG_WAREHOUSE");
    }
    String name =
        PropertyUtil.propertyAsString(
            properties, RESTCatalogServer.CATALOG_NAME, RESTCatalogServer.CATALOG_NAME_DEFAULT);
    Map<String, String> shown = Maps.newTreeMap();
    properties.forEach(
        (key, value) ->
            shown.put(key, key.matches(".*(secret|password|token|credential).*") ? "***" : value));
    LOG.info("Creating {} catalog with properties: {}", name, shown);
    Catalog catalog = CatalogUtil.buildIcebergCatalog(name, properties, new Configuration());
    RESTCatalogAdapter adapter =
        new RESTServerCatalogAdapter(new RESTCatalogServer.CatalogContext(catalog, properties));

    ServletContextHandler context = new ServletContextHandler(ServletContextHandler.NO_SESSIONS);
    context.addServlet(new ServletHolder(new RESTCatalogServlet(adapter)), "/*");
    context.insertHandler(new GzipHandler());

    Server server = new Server();
    ServerConnector connector = new ServerConnector(server);
    connector.setHost(PropertyUtil.propertyAsString(properties, "rest.host", "127.0.0.1"));
    connector.setPort(
        PropertyUtil.propertyAsInt(
            properties, RESTCatalogServer.REST_PORT, RESTCatalogServer.REST_PORT_DEFAULT));
    server.addConnector(connector);
    server.setHandler(context);
    server.setStopAtShutdown(true);
    server.start();
    server.join();
  }
}
