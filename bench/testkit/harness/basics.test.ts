import { defineSuite } from '../suite.js';

defineSuite('harness', 'basics');
