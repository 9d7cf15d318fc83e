import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.FlatMapFunction;
import org.apache.flink.api.common.serialization.SimpleStringEncoder;
import org.apache.flink.api.java.tuple.Tuple2;
import org.apache.flink.connector.file.sink.FileSink;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.util.Collector;

/** Flink's own WordCount example (flink-examples-streaming), batch mode. */
public class WordCount {
    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        env.setParallelism(Integer.parseInt(args[2]));
        FileSource<String> source = FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(args[0])).build();
        long start = System.nanoTime();
        env.fromSource(source, WatermarkStrategy.noWatermarks(), "file-input")
            .flatMap(new Tokenizer()).name("tokenizer")
            .keyBy(value -> value.f0)
            .sum(1).name("counter")
            .map(t -> t.f0 + "\t" + t.f1).returns(String.class)
            .sinkTo(FileSink.<String>forRowFormat(new Path(args[1]), new SimpleStringEncoder<>()).build());
        env.execute("WordCount");
        System.out.printf("flink wordcount: %.2f s%n", (System.nanoTime() - start) / 1e9);
    }

    public static final class Tokenizer implements FlatMapFunction<String, Tuple2<String, Integer>> {
        @Override
        public void flatMap(String value, Collector<Tuple2<String, Integer>> out) {
            for (String token : value.toLowerCase().split("\\W+")) {
                if (token.length() > 0) {
                    out.collect(new Tuple2<>(token, 1));
                }
            }
        }
    }
}
